package meta

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"
)

// EventAgent is the kind of agent registry events.
const EventAgent = "agent"

// AgentRecord is a registered host agent: nodes name it, and the manager
// sends the agent token and the cluster's credentials only to the URLs of
// registered agents.
type AgentRecord struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// HealthURL is where the agent serves its nodes' health checks
	// (clustermgr agent --health-addr); "" when it serves none.
	HealthURL string    `json:"health_url,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// PutAgent registers an agent, or moves a registered one to a new URL.
type PutAgent struct {
	Stamp
	Agent AgentRecord `json:"agent"`
}

// Type implements Command.
func (*PutAgent) Type() CommandType { return CmdPutAgent }

// DeleteAgent forgets an agent no node or backup uses.
type DeleteAgent struct {
	Stamp
	Name string `json:"name"`
}

// Type implements Command.
func (*DeleteAgent) Type() CommandType { return CmdDeleteAgent }

// ValidateAgentURL checks an agent's URL: http(s), a host, nothing else.
func ValidateAgentURL(field, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return invalid(field, "%q is not an http(s) URL of a host and port", Truncate(v, 200))
	}
	return nil
}

// Truncate cuts s to at most n bytes, marking the cut (user input shown
// in errors, logs and records).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// agentUsers names the nodes and backups that use agent name.
func (s *State) agentUsers(name string) []string {
	var out []string
	for _, cl := range s.Clusters {
		for _, sh := range cl.Shards {
			for _, n := range sh.Nodes {
				if n.Agent == name {
					out = append(out, "node "+cl.Name+"/"+sh.Name+"/"+n.Name)
				}
			}
		}
	}
	for _, b := range s.Backups {
		if b.Agent == name {
			out = append(out, "backup "+b.ID)
		}
	}
	sort.Strings(out)
	return out
}

func applyPutAgent(s *State, c *PutAgent, p pass) error {
	a := c.Agent
	if err := ValidateName("name", a.Name); err != nil {
		return err
	}
	if err := ValidateAgentURL("url", a.URL); err != nil {
		return err
	}
	a.URL = strings.TrimSuffix(a.URL, "/")
	if a.HealthURL != "" {
		if err := ValidateAgentURL("health_url", a.HealthURL); err != nil {
			return err
		}
		a.HealthURL = strings.TrimSuffix(a.HealthURL, "/")
	}
	for _, o := range s.Agents {
		if o.Name != a.Name && strings.EqualFold(o.URL, a.URL) {
			return conflict("%s is already agent %s", a.URL, o.Name)
		}
	}
	old, exists := s.Agents[a.Name]
	if exists && old.URL == a.URL && old.HealthURL == a.HealthURL {
		return nil
	}
	if p.check {
		return nil
	}
	a.CreatedAt = c.At
	if exists {
		a.CreatedAt = old.CreatedAt
	}
	s.Agents[a.Name] = &a
	s.addEvent(Event{At: c.At, Kind: EventAgent, Message: fmt.Sprintf("agent %s registered at %s", a.Name, a.URL)})
	return nil
}

func applyDeleteAgent(s *State, c *DeleteAgent, p pass) error {
	if _, ok := s.Agents[c.Name]; !ok {
		return notFound("agent %q is not registered", c.Name)
	}
	if users := s.agentUsers(c.Name); len(users) > 0 {
		return conflict("agent %s is used by %s", c.Name, strings.Join(users, ", "))
	}
	if p.check {
		return nil
	}
	delete(s.Agents, c.Name)
	s.addEvent(Event{At: c.At, Kind: EventAgent, Message: fmt.Sprintf("agent %s removed", c.Name)})
	return nil
}

// AgentURL returns the URL of the registered agent name, or "".
func (s *State) AgentURL(name string) string {
	if a, ok := s.Agents[name]; ok {
		return a.URL
	}
	return ""
}

// checkRegistered refuses a node whose agent is not registered.
func (s *State) checkRegistered(field string, n *Node) error {
	if n.Agent == "" {
		return nil
	}
	if _, ok := s.Agents[n.Agent]; !ok {
		return invalid(field, "agent %q is not registered (POST /v1/agents)", n.Agent)
	}
	return nil
}
