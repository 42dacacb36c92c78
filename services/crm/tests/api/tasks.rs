//! Tasks: (tests being written).
