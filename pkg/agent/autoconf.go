package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// quoteConf quotes a value for postgresql.conf.
func quoteConf(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// writeAutoConf replaces the given settings in a postgresql.auto.conf file
// (an empty value removes the setting), keeping the rest, and keeps the
// file's owner and mode.
func writeAutoConf(path string, settings map[string]string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		key, _, _ := strings.Cut(line, "=")
		if _, replaced := settings[strings.TrimSpace(key)]; replaced {
			continue
		}
		out = append(out, line)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if settings[k] != "" {
			out = append(out, k+" = "+quoteConf(settings[k]))
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(out, "\n")+"\n"), info.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if st, ok := statOwner(info); ok {
		if err := os.Chown(tmp, st.uid, st.gid); err != nil {
			return fmt.Errorf("chown %s: %w", tmp, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// preserveFiles reads the named files of dir and returns a function that
// writes them back with their mode and owner (files that did not exist are
// skipped).
func preserveFiles(dir string, names ...string) (func() error, error) {
	type saved struct {
		path string
		data []byte
		info os.FileInfo
	}
	var files []saved
	for _, n := range names {
		p := dir + "/" + n
		info, err := os.Stat(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		files = append(files, saved{p, data, info})
	}
	return func() error {
		for _, f := range files {
			if err := os.WriteFile(f.path, f.data, f.info.Mode().Perm()); err != nil {
				return fmt.Errorf("restore %s: %w", f.path, err)
			}
			if o, ok := statOwner(f.info); ok {
				if err := os.Chown(f.path, o.uid, o.gid); err != nil {
					return fmt.Errorf("chown %s: %w", f.path, err)
				}
			}
		}
		return nil
	}, nil
}

// copyFiles copies the named files of dir from into dir to, with their
// modes and owners; a file from does not have is skipped.
func copyFiles(from, to string, names ...string) error {
	for _, n := range names {
		src, dst := filepath.Join(from, n), filepath.Join(to, n)
		info, err := os.Stat(src)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
		if o, ok := statOwner(info); ok {
			if err := os.Chown(dst, o.uid, o.gid); err != nil {
				return fmt.Errorf("chown %s: %w", dst, err)
			}
		}
	}
	return nil
}

// hasSetting reports whether the server in dataDir sets name to a
// non-empty value in postgresql.conf or postgresql.auto.conf.
func hasSetting(dataDir, name string) bool {
	for _, f := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		data, err := os.ReadFile(filepath.Join(dataDir, f))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if ok && strings.TrimSpace(k) == name && strings.Trim(strings.TrimSpace(v), "'") != "" {
				return true
			}
		}
	}
	return false
}
