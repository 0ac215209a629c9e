// Package durable writes files that survive a crash once the write
// returns: keys made on first start, the checkpoint keys, what the
// command line pulls from an inbox.
package durable

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// WriteNew writes a file that must not exist yet (an error matching
// os.ErrExist if it does) and syncs it and its directory. A file it fails
// to write whole is removed.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(path)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// Replace writes data to path whether or not it exists, all or nothing:
// a temporary file, synced, renamed over path, then the directory synced.
func Replace(path string, data []byte, mode os.FileMode) error {
	return ReplaceWith(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// ReplaceWith is Replace of what write writes, for a file too large to
// hold in memory. An error of write leaves path as it was.
func ReplaceWith(path string, mode os.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	werr := write(f)
	if err := errors.Join(werr, f.Chmod(mode), f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
