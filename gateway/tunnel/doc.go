// Package tunnel owns the wire format of the gateway tunnel: the QUIC
// transport settings and the length-prefixed protobuf frames (StreamHeader,
// StreamResponse) that open every tunneled flow. docs/protocol.md is the
// normative description.
//
// Rules:
//   - A frame is a 2-byte big-endian length followed by that many bytes of
//     protobuf. A frame longer than the reader's limit is rejected before a
//     byte of its body is read.
//   - Decoding never panics and never allocates more than the limit.
//   - A bad frame is an error for its stream only; nothing here closes a
//     connection.
package tunnel
