package agent

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// identMap names the pg_ident.conf map that lets the OS user PostgreSQL
// runs as connect as the superuser through the Unix socket.
const identMap = "clustermgr"

// accessFiles returns the pg_hba.conf and pg_ident.conf of a provisioned
// server: on the Unix socket, the OS user osUser that runs PostgreSQL and
// the agent's own (agentUser, root when it runs as root: the one user who
// could become osUser anyway) alone, as superuser (peer); over TCP, the
// allowed hosts (addresses, CIDRs or host names), every user and
// replication, with scram-sha-256 alone. Anything else is refused.
func accessFiles(superuser, osUser, agentUser string, allow []string) (hba, ident string, err error) {
	if osUser == "" {
		return "", "", fmt.Errorf("the OS user PostgreSQL runs as is unknown")
	}
	if agentUser == "" {
		agentUser = osUser
	}
	for _, n := range []string{superuser, osUser, agentUser} {
		if strings.ContainsAny(n, " \t\"#,\r\n") || n == "" {
			return "", "", &badRequest{fmt.Sprintf("user name %.100q cannot be written to pg_hba.conf", n)}
		}
	}
	lines := []string{
		"# Written by the clustermgr agent. Unix socket: the OS users in pg_ident.conf only, as " + superuser + ".",
		"# TCP: the hosts below only, scram-sha-256 only.",
		fmt.Sprintf("local all %s peer map=%s", superuser, identMap),
		fmt.Sprintf("local replication %s peer map=%s", superuser, identMap),
	}
	cidrs := map[string]bool{}
	for _, h := range allow {
		c, err := hostCIDR(h)
		if err != nil {
			return "", "", err
		}
		cidrs[c] = true
	}
	sorted := make([]string, 0, len(cidrs))
	for c := range cidrs {
		sorted = append(sorted, c)
	}
	sort.Strings(sorted)
	for _, c := range sorted {
		lines = append(lines, "host all all "+c+" scram-sha-256", "host replication all "+c+" scram-sha-256")
	}
	ident = fmt.Sprintf("# MAPNAME SYSTEM-USERNAME PG-USERNAME\n%s %s %s\n", identMap, osUser, superuser)
	if agentUser != osUser {
		ident += fmt.Sprintf("%s %s %s\n", identMap, agentUser, superuser)
	}
	return strings.Join(lines, "\n") + "\n", ident, nil
}

// hostCIDR turns an address into a CIDR of it alone; a CIDR or a host
// name (which PostgreSQL resolves and checks both ways) stays as it is.
func hostCIDR(h string) (string, error) {
	if _, n, err := net.ParseCIDR(h); err == nil {
		return n.String(), nil
	}
	ip := net.ParseIP(h)
	if ip == nil {
		if h == "" || len(h) > 253 || strings.Trim(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != "" || strings.HasPrefix(h, ".") {
			return "", &badRequest{fmt.Sprintf("allowed host %.100q is not an IP address, CIDR or host name", h)}
		}
		return h, nil
	}
	if ip.To4() != nil {
		return ip.String() + "/32", nil
	}
	return ip.String() + "/128", nil
}
