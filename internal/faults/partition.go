package faults

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	return c.partition(cutRules(n), nil)
}

// PartitionWith cuts n and one of its standbys, with, off together from
// the managers and the other nodes: with keeps streaming from n through
// the replication connection it has, and neither is reachable from
// anything else but the clients' address (see Partition).
func (c *Cluster) PartitionWith(n, with *Node) (heal func(), err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres:"+pgPassword+"@127.0.0.1:"+strconv.Itoa(n.Port)+"/postgres?connect_timeout=2")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	var clientPort int
	if err := conn.QueryRow(ctx, "SELECT client_port FROM pg_stat_replication WHERE application_name = $1 AND state = 'streaming'", with.Name).Scan(&clientPort); err != nil {
		return nil, fmt.Errorf("%s does not stream from %s: %w", with.Name, n.Name, err)
	}
	p, cp := strconv.Itoa(n.Port), strconv.Itoa(clientPort)
	keep := [][]string{
		{"INPUT", "-i", "lo", "-p", "tcp", "--sport", cp, "--dport", p, "-j", "ACCEPT"},
		{"INPUT", "-i", "lo", "-p", "tcp", "--sport", p, "--dport", cp, "-j", "ACCEPT"},
	}
	return c.partition(append(cutRules(n), cutRules(with)...), keep)
}

// cutRules drops packets between n's PostgreSQL and agent ports and any
// address but clientAddr.
func cutRules(n *Node) [][]string {
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
	return rules
}

// partition inserts the drop rules, then the accept rules above them,
// and returns the function that removes them all.
func (c *Cluster) partition(drop, accept [][]string) (heal func(), err error) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return nil, fmt.Errorf("iptables is not installed: %w", err)
	}
	rules := append(append([][]string(nil), drop...), accept...)
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
