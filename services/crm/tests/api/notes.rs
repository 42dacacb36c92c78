//! Notes: (tests being written).
