// Package action carries out decisions as operations: sequences of
// idempotent steps (fence, promote, record the new primary, repoint
// standbys, rewind and restart an old primary, change the synchronous
// set). Each step is written to Raft as running before it runs and as done
// after, and carries the shard epoch, so a new manager leader resumes an
// unfinished operation where the old one stopped and agents refuse a
// deposed leader's commands. SQL goes through pgx; host work through the
// agent client.
package action
