// Command show prints the build it is, as package version sees it: one
// JSON object, for the package's test of the linker stamp.
package main

import (
	"encoding/json"
	"os"

	"github.com/pushfabric/pushfabric/internal/version"
)

func main() {
	_ = json.NewEncoder(os.Stdout).Encode(version.Current())
}
