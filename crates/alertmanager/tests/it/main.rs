//! The router end to end, in process, against real HTTP receivers on loopback:
//! grouping and timers, silences and inhibition, repeats, retries while a receiver
//! is down, durability across a restart, acknowledgement, escalation and incidents.

mod support;

mod durability;
mod pipeline;
