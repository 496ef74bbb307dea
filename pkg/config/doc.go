// Package config owns the manager server's settings: the keys of
// cluster_mgr.cnf (TOML), their defaults and allowed ranges, the order in
// which the file, CLUSTERMGR_* environment variables and flags override one
// another, and validation errors that name the key and its range.
package config
