// Command gencrds writes the mcs-api CRDs of the module go.mod requires
// into the Helm chart's crds/ directory (deploy/helm/causeway/crds). It
// runs from the repository root: `go run ./hack/gencrds` (make generate).
package main

import (
	"fmt"
	"os"

	"github.com/causeway-mesh/causeway/deploy"
)

func main() {
	if err := deploy.WriteCRDs("."); err != nil {
		fmt.Fprintln(os.Stderr, "gencrds:", err)
		os.Exit(1)
	}
}
