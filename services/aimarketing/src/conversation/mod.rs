//! Conversations with the model: what is sent to it and how its reply is streamed.

pub mod window;
