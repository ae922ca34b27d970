// Package names owns the validation of the names Causeway accepts from
// users and peers: cluster, namespace, service, port and host names, all
// RFC 1123 labels as Kubernetes defines them.
package names

import "regexp"

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// IsDNSLabel reports whether s is an RFC 1123 label: 1 to 63 lowercase
// letters, digits or '-', starting and ending with a letter or digit.
func IsDNSLabel(s string) bool { return dnsLabel.MatchString(s) }
