// Package store owns Causeway's etcd schema: every key under /causeway/v1/,
// the versioned protobuf codec of every value, and the transactions that
// must not race (clusterset IP allocation, export creation times).
// docs/etcd-schema.md is the normative description.
//
// Rules:
//   - No other package builds an etcd key or decodes an etcd value.
//   - A value of an unknown schema version, or bytes that do not decode, is
//     logged, counted in causeway_store_decode_errors_total and skipped; it
//     never fails a whole list or watch, and a watch reports it as
//     Undecodable, not as a deletion (readers keep the last good value).
//   - A gateway record without a lease is not a live instance: List and
//     Watch leave it out. Gateway records are written by ClaimGateway,
//     guarded by the announcer's key.
//   - A clusterset IP is owned by exactly one (namespace, service) per
//     cluster: allocation is a create-only transaction on its vips/ key,
//     addresses held by imports count as used, and an import is written
//     with its addresses only while their reservations name it
//     (PutReservedImportsAt).
package store
