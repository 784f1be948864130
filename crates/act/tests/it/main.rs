//! Integration tests of the action crate: real child processes under the
//! supervisor, a real HTTP proxy and webhook receivers on loopback, and a fake
//! Kubernetes API server that the real `kubectl` is run against too.

mod engine;
mod fake_kube;
mod kube;
mod supervisor;
mod support;
