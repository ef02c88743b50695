//! The remotecommand channel protocol (v4/v5.channel.k8s.io) over WebSocket.
