package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Files of an export folder.
const (
	// LeavesFile holds leaf i on line i+1, exactly as stored (canonical
	// JSON has no newlines), each line ended by "\n".
	LeavesFile = "leaves.jsonl"
	// CheckpointsFile holds one JSON object per line, in publication
	// order: {"seq": "<stream sequence>", "note": "<signed checkpoint>"}.
	CheckpointsFile = "checkpoints.jsonl"
	// LeafHashesFile holds the 32-byte RFC 6962 hash of each leaf, in
	// order. Verification does not trust it; it only uses it, once it gives
	// a signed root, to name the first leaf that differs.
	LeafHashesFile = "leaf-hashes.bin"
	// ManifestFile describes the export.
	ManifestFile = "export.json"
)

// maxLeaf is the longest leaf line an export may hold (the event stream
// refuses messages over 1 MiB).
const maxLeaf = 4 << 20

// Manifest describes an export.
type Manifest struct {
	Format      string `json:"format"`
	Origin      string `json:"origin,omitempty"`
	Leaves      string `json:"leaves"`
	Checkpoints string `json:"checkpoints"`
	ExportedAt  string `json:"exported_at"`
}

// ExportFormat names the export layout.
const ExportFormat = "noticerelay-audit-export/v1"

// checkpointLine is one line of CheckpointsFile.
type checkpointLine struct {
	Seq  string `json:"seq"`
	Note string `json:"note"`
}

// ExportWriter writes an export folder.
type ExportWriter struct {
	dir            string
	leaves, hashes *os.File
	lw, hw         *bufio.Writer
	n              uint64
}

// NewExportWriter creates the export files in dir (made if needed); it
// refuses a folder that already holds an export.
func NewExportWriter(dir string) (*ExportWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, LeavesFile)); err == nil {
		return nil, fmt.Errorf("%s already holds an export", dir)
	}
	w := &ExportWriter{dir: dir}
	var err error
	if w.leaves, err = os.Create(filepath.Join(dir, LeavesFile)); err != nil {
		return nil, err
	}
	if w.hashes, err = os.Create(filepath.Join(dir, LeafHashesFile)); err != nil {
		w.leaves.Close()
		return nil, err
	}
	w.lw, w.hw = bufio.NewWriterSize(w.leaves, 1<<20), bufio.NewWriterSize(w.hashes, 1<<16)
	return w, nil
}

// Leaf appends a leaf.
func (w *ExportWriter) Leaf(data []byte) error {
	if bytes.IndexByte(data, '\n') >= 0 {
		return fmt.Errorf("leaf %d holds a newline: not canonical JSON", w.n)
	}
	w.lw.Write(data)
	w.lw.WriteByte('\n')
	_, err := w.hw.Write(LeafHash(data))
	w.n++
	return err
}

// Close writes the checkpoints and the manifest and closes the files.
func (w *ExportWriter) Close(origin string, checkpoints []StoredCheckpoint, now time.Time) error {
	var errs []error
	for _, f := range []struct {
		w *bufio.Writer
		f *os.File
	}{{w.lw, w.leaves}, {w.hw, w.hashes}} {
		errs = append(errs, f.w.Flush(), f.f.Sync(), f.f.Close())
	}
	var b bytes.Buffer
	for _, c := range checkpoints {
		line, _ := json.Marshal(checkpointLine{Seq: strconv.FormatUint(c.Seq, 10), Note: string(c.Note)})
		b.Write(line)
		b.WriteByte('\n')
	}
	errs = append(errs, os.WriteFile(filepath.Join(w.dir, CheckpointsFile), b.Bytes(), 0o644))
	m, _ := json.MarshalIndent(Manifest{Format: ExportFormat, Origin: origin, Leaves: strconv.FormatUint(w.n, 10),
		Checkpoints: strconv.Itoa(len(checkpoints)), ExportedAt: now.UTC().Format(time.RFC3339)}, "", "  ")
	errs = append(errs, os.WriteFile(filepath.Join(w.dir, ManifestFile), append(m, '\n'), 0o644))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("writing export %s: %w", w.dir, err)
	}
	return nil
}

// ExportStream writes the whole log of a running relay to dir: every leaf
// up to the last one stored when it starts, and every checkpoint.
func ExportStream(ctx context.Context, js jetstream.JetStream, dir, origin string, progress func(uint64)) (uint64, error) {
	// Checkpoints first: every leaf they sign is stored before them, so the
	// leaves read next include all of them.
	cps, err := ReadCheckpoints(ctx, js)
	if err != nil {
		return 0, err
	}
	w, err := NewExportWriter(dir)
	if err != nil {
		return 0, err
	}
	n, err := ReadLeaves(ctx, js, 0, 0, func(i uint64, data []byte) error {
		if progress != nil && (i+1)%(1<<14) == 0 {
			progress(i + 1)
		}
		return w.Leaf(data)
	})
	if err != nil {
		_ = w.Close(origin, nil, time.Now())
		return n, err
	}
	return n, w.Close(origin, cps, time.Now())
}

// Export is an export folder, read back.
type Export struct {
	Dir string
}

// Checkpoints reads the export's checkpoints.
func (e Export) Checkpoints() ([]StoredCheckpoint, error) {
	f, err := os.Open(filepath.Join(e.Dir, CheckpointsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []StoredCheckpoint
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l checkpointLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", CheckpointsFile, n, err)
		}
		seq, _ := strconv.ParseUint(l.Seq, 10, 64)
		out = append(out, StoredCheckpoint{Seq: seq, Note: []byte(l.Note)})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", CheckpointsFile, err)
	}
	return out, nil
}

// LeafHashes reads the export's leaf hashes; nil when there are none.
func (e Export) LeafHashes() []byte {
	b, err := os.ReadFile(filepath.Join(e.Dir, LeafHashesFile))
	if err != nil || len(b)%HashSize != 0 {
		return nil
	}
	return b
}

// Size returns the size of the leaves file (for progress).
func (e Export) Size() int64 {
	fi, err := os.Stat(filepath.Join(e.Dir, LeavesFile))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Each implements Leaves: it reads the leaves file line by line.
func (e Export) Each(ctx context.Context, fn func(index uint64, data []byte) error) error {
	f, err := os.Open(filepath.Join(e.Dir, LeavesFile))
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, maxLeaf)
	for i := uint64(0); ; i++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return nil
			}
		} else if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("%s: leaf %d is longer than %d bytes", LeavesFile, i, maxLeaf)
		} else if err != nil {
			return fmt.Errorf("%s: %w", LeavesFile, err)
		}
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := fn(i, bytes.TrimSuffix(line, []byte("\n"))); err != nil {
			return err
		}
	}
}
