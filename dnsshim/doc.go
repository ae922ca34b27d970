// Package dnsshim owns the authoritative DNS server for the clusterset
// zone (clusterset.local by default): it answers the KEP-1645 multi-cluster
// service names for one cluster from the federation catalog.
//
// Rules:
//   - Answers come only from the current catalog view; a query never blocks
//     on the federator or etcd.
//   - Names outside the zone are REFUSED; names inside get an authoritative
//     answer, NXDOMAIN or NODATA, negative answers with the SOA.
//   - Bad input (no or several questions, other opcodes) gets FORMERR or
//     NOTIMP, never a crash; responses are never answered.
//   - Until the source reports ready, names in the zone get SERVFAIL.
//   - A cached UDP answer is byte for byte the answer the full path gives
//     for the same query in the same view (ID, RD and CD patched in); each
//     UDP reader owns its cache and empties it when the view changes.
package dnsshim
