//! Contacts: (tests being written).
