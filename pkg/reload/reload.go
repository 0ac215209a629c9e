// Package reload keeps a value made from files current without a restart:
// the geolocation database, the HTTP listener's certificate. At most once
// per interval it checks the files and, when any changed (another file at
// the path, another size or modification time), makes the value again.
// A load that fails leaves the last good value in use and is not tried
// again until the files change once more, so a half-finished rotation
// (a new certificate beside the old key) costs nothing and is picked up
// when it completes.
package reload

import (
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckEvery is how often, at most, the files are checked.
const DefaultCheckEvery = time.Second

// Options tune Files.
type Options[T any] struct {
	// CheckEvery is how often, at most, Current checks the files
	// (DefaultCheckEvery when 0).
	CheckEvery time.Duration
	// OnReload, if set, is called after every attempt to load changed
	// files: with the new value, or with the error (the value in use then
	// stays in use).
	OnReload func(v T, err error)
}

// Files is a value loaded from files, loaded again when they change.
type Files[T any] struct {
	paths []string
	load  func() (T, error)
	o     Options[T]
	cur   atomic.Pointer[T]
	next  atomic.Int64 // Unix nanoseconds of the next check

	mu        sync.Mutex // serialises checks
	loaded    []os.FileInfo
	failed    []os.FileInfo
	failedErr error
}

// Open loads the value with load, which reads paths, and returns it kept
// current. It fails if the first load fails.
func Open[T any](paths []string, load func() (T, error), o Options[T]) (*Files[T], error) {
	if o.CheckEvery <= 0 {
		o.CheckEvery = DefaultCheckEvery
	}
	f := &Files[T]{paths: paths, load: load, o: o}
	fis, err := f.stat()
	if err != nil {
		return nil, err
	}
	v, err := load()
	if err != nil {
		return nil, err
	}
	f.loaded = fis
	f.cur.Store(&v)
	f.next.Store(time.Now().Add(o.CheckEvery).UnixNano())
	return f, nil
}

// Current returns the value in use. At most once per CheckEvery it first
// checks the files and loads them if they changed; callers that arrive
// meanwhile get the value in use without waiting.
func (f *Files[T]) Current() T {
	now := time.Now().UnixNano()
	if next := f.next.Load(); now >= next && f.next.CompareAndSwap(next, now+int64(f.o.CheckEvery)) {
		_, _ = f.Reload() // reported to OnReload; the value in use stays
	}
	return *f.cur.Load()
}

// Reload checks the files now and loads them if they changed. It reports
// whether a new value is in use.
func (f *Files[T]) Reload() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The files' state before the load is what the load saw or older: a
	// change during the load is caught by the next check.
	fis, err := f.stat()
	if err != nil {
		return false, err
	}
	if same(fis, f.loaded) {
		return false, nil
	}
	if same(fis, f.failed) {
		return false, f.failedErr
	}
	v, err := f.load()
	if err != nil {
		f.failed, f.failedErr = fis, err
		if f.o.OnReload != nil {
			var zero T
			f.o.OnReload(zero, err)
		}
		return false, err
	}
	f.loaded, f.failed, f.failedErr = fis, nil, nil
	f.cur.Store(&v)
	if f.o.OnReload != nil {
		f.o.OnReload(v, nil)
	}
	return true, nil
}

func (f *Files[T]) stat() ([]os.FileInfo, error) {
	fis := make([]os.FileInfo, len(f.paths))
	for i, p := range f.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		fis[i] = fi
	}
	return fis, nil
}

// same reports whether a and b describe the same versions of the files.
func same(a, b []os.FileInfo) bool {
	return len(a) > 0 && slices.EqualFunc(a, b, func(x, y os.FileInfo) bool {
		return x != nil && y != nil && os.SameFile(x, y) && x.Size() == y.Size() && x.ModTime().Equal(y.ModTime())
	})
}
