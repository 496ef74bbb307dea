package faults

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Partition cuts a node's host off from every other process of the
// cluster: packets between its PostgreSQL port or its agent's port and
// any loopback address but clientAddr are dropped (iptables on lo), as a
// network partition would, without resets. The suite's clients still
// reach it: they are the clients on its side of the partition. The agent
// still reaches its own server (through its Unix socket). The returned
// function heals the partition; it is also run when the test ends.
func (c *Cluster) Partition(n *Node) (heal func(), err error) {
	c.t.Helper()
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("iptables is not installed: %w", err)
	}
	agentPort := 0
	if u := agentURL(n.Agent); u != "" {
		agentPort, _ = strconv.Atoi(u[strings.LastIndexByte(u, ':')+1:])
	}
	var rules [][]string
	for _, port := range []int{n.Port, agentPort} {
		if port == 0 {
			continue
		}
		p := strconv.Itoa(port)
		rules = append(rules,
			[]string{"INPUT", "-i", "lo", "-p", "tcp", "--dport", p, "!", "-s", clientAddr, "-j", "DROP"},
			[]string{"INPUT", "-i", "lo", "-p", "tcp", "--sport", p, "!", "-d", clientAddr, "-j", "DROP"})
	}
	var added [][]string
	healed := false
	heal = func() {
		if healed {
			return
		}
		healed = true
		for _, r := range added {
			if out, err := exec.Command("iptables", append([]string{"-D"}, r...)...).CombinedOutput(); err != nil {
				c.t.Errorf("heal partition: iptables -D %s: %v %s", strings.Join(r, " "), err, out)
			}
		}
	}
	c.t.Cleanup(heal)
	for _, r := range rules {
		if out, err := exec.Command("iptables", append([]string{"-I"}, r...)...).CombinedOutput(); err != nil {
			heal()
			return nil, fmt.Errorf("iptables -I %s: %v %s", strings.Join(r, " "), err, out)
		}
		added = append(added, r)
	}
	return heal, nil
}
