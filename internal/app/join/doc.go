// Package join adds a cluster to a clusterset (`causeway join`): it owns the
// cluster's first registration in the federation etcd, the creation of its
// CA, and the files an operator installs the Helm chart with.
//
// Rules:
//   - Nothing is overwritten without Force: not the output files, not the CA
//     directory, not a cluster record or trust bundle already in etcd. The
//     registration is one create-only transaction, so two joins of one name
//     cannot both succeed.
//   - Every etcd key and value goes through federator/store.
//   - Files holding private keys or passwords (the CA key, the Secret
//     manifests) are written 0600 in directories created 0700.
//   - Checks that can fail come before anything is written; when the
//     registration loses a race the files written for it are removed.
package join
