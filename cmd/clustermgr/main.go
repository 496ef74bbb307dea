// Command clustermgr is the Raft-replicated cluster manager for PostgreSQL:
// the manager server, the host agent, a local dev group, and the client
// commands that talk to the REST API.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd(os.Stdout, os.Stderr).Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "clustermgr:", err)
		os.Exit(1)
	}
}
