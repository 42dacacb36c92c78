//! Deals: (tests being written).
