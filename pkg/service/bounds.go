package service

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/clustermgr/clustermgr/pkg/meta"
)

// Bounds of what a request may hold, checked once it is decoded and
// before anything is proposed: no name, setting or password needs more.
const (
	maxStringBytes = 4096
	maxListLen     = 1000
	// maxViewKeys bounds the node keys of a follower's view: a fleet's
	// size, not a request's (the body limit holds it too).
	maxViewKeys = 1_000_000
)

// bounds are the limits of a decoded request, checked by walk: no string
// longer than maxStringBytes, no list or map longer than list; walk names
// the field by its JSON path.
type bounds struct{ list int }

func (b bounds) walk(v reflect.Value, path string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return b.walk(v.Elem(), path)
	case reflect.String:
		if n := v.Len(); n > maxStringBytes {
			return tooLong(path, fmt.Sprintf("is %d bytes long; the limit is %d", n, maxStringBytes))
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Len() > b.list {
			return tooLong(path, fmt.Sprintf("has %d entries; the limit is %d", v.Len(), b.list))
		}
		for i := 0; i < v.Len(); i++ {
			if err := b.walk(v.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case reflect.Map:
		if v.Len() > b.list {
			return tooLong(path, fmt.Sprintf("has %d entries; the limit is %d", v.Len(), b.list))
		}
		it := v.MapRange()
		for it.Next() {
			key := fmt.Sprint(it.Key().Interface())
			if len(key) > maxStringBytes {
				return tooLong(path, fmt.Sprintf("has a key %d bytes long; the limit is %d", len(key), maxStringBytes))
			}
			if err := b.walk(it.Value(), join(path, key)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			p := path
			switch {
			case f.Anonymous && name == "":
			case name == "":
				p = join(path, f.Name)
			default:
				p = join(path, name)
			}
			if err := b.walk(v.Field(i), p); err != nil {
				return err
			}
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func tooLong(field, msg string) error {
	if field == "" {
		field = "body"
	}
	return &meta.Error{Kind: meta.KindInvalid, Field: field, Msg: msg}
}
