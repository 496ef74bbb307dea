// Package keyring owns the manager's secret key file and the sealing of
// the secrets the group keeps in Raft (the clusters' PostgreSQL password,
// the peer secret): AES-256-GCM with a random nonce, bound to what the
// secret is for, under a key that never leaves the replica's key file.
//
// A key file holds one or more keys, one per line (base64 of 32 bytes;
// blank lines and lines starting with # are ignored). The first key seals;
// every key opens, so a new key is put first and the old one kept until
// nothing the group holds is sealed with it any more. A sealed value names
// its key by an id derived from the key, which reveals nothing about it.
package keyring
