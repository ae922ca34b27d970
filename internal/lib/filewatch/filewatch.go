// Package filewatch owns following a configuration file that operators
// edit while the process runs: it re-reads the file at an interval, hands
// each changed content to the caller, and reports each distinct bad
// version (unreadable, or refused by the caller) once, while the caller
// keeps its last good version.
package filewatch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"
)

// Watcher follows one file. Set the fields, call Load once, then Run.
type Watcher struct {
	// Path of the file; What names it in errors ("routes file").
	Path, What string
	// Interval between checks.
	Interval time.Duration
	// Apply takes a content that differs from the last applied one; an
	// error refuses it (the caller keeps its last good version).
	Apply func(data []byte) error
	// Rejected is called once per distinct bad version (content hash, or
	// read error) with why; Recovered when a good check follows bad ones.
	Rejected  func(err error)
	Recovered func()
	// Checked, if set, is called after every periodic check (tests wait
	// on it).
	Checked func()

	sum [sha256.Size]byte // of the content last applied
}

// Load reads and applies the file once; errors name it.
func (w *Watcher) Load() error {
	_, err := w.check()
	return err
}

// Run checks the file every Interval until ctx ends; it returns nil then.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.Interval)
	defer t.Stop()
	lastBad := "" // the bad version last reported
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		key, err := w.check()
		if w.Checked != nil {
			w.Checked()
		}
		switch {
		case err == nil:
			if lastBad != "" && w.Recovered != nil {
				w.Recovered()
			}
			lastBad = ""
		case key != lastBad:
			lastBad = key
			if w.Rejected != nil {
				w.Rejected(err)
			}
		}
	}
}

// check reads the file and applies a changed content. For a bad version
// it returns the error and a key that identifies the version.
func (w *Watcher) check() (badKey string, err error) {
	data, err := os.ReadFile(w.Path)
	if err != nil {
		return "read:" + err.Error(), fmt.Errorf("read %s: %w", w.What, err)
	}
	sum := sha256.Sum256(data)
	if sum == w.sum {
		return "", nil
	}
	if err := w.Apply(data); err != nil {
		return "content:" + hex.EncodeToString(sum[:]), err
	}
	w.sum = sum
	return "", nil
}
