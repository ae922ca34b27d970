// Package ratelimit limits events per key (a source address, a prefix)
// with token buckets held in a table of bounded size.
//
// Rules:
//   - A key absent from the table has a full bucket: a bucket that has
//     refilled is indistinguishable from none, so full buckets are what the
//     table drops when it is at its size.
//   - The table never holds more than MaxKeys buckets. When it is full of
//     buckets that are not full, new keys share one overflow bucket, so an
//     attacker spreading over many keys cannot grow memory or evict the
//     state of the keys it floods from.
package ratelimit
