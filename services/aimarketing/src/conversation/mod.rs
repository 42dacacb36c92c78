//! Conversations with the model: what it is given ([`window`], the lead's context) and
//! how its reply is streamed and stored ([`send`]).

pub(crate) mod lead_context;
pub(crate) mod send;
pub mod window;
