package worker

import (
	"slices"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/jobs"
)

// keptInput keeps the inputs of the documents whose pages this worker
// fetched last, for their next pages: a document's page jobs all name its
// S3 object (jobs.Pages) and reach a worker one after another (the zoo's
// ocr runs a page a batch), and each would otherwise GET the whole
// document again, N GETs of it for N pages. The rules:
//
//   - Only a document's input is kept: a page job's (jobs.PageOf), and a
//     document's own once this worker has fanned it out (its first pages
//     may well come here). Any other job's object is its own, never asked
//     for again.
//   - A few are kept, so that pages of documents that run at once (a
//     premium one among a bulk one's) take turns without a GET each:
//     at most keptInputs, and keptInputBytes in all, the least recently
//     used going first; each goes keptInputIdle after it was last kept or
//     served.
//   - A job's input is written once, at submit, and never rewritten under
//     its key: what is kept is what S3 holds, for as long as the key is
//     asked for.
type keptInput struct {
	mu   sync.Mutex
	idle time.Duration // keptInputIdle when zero
	kept []*keptEntry  // least recently used first
	size int64
}

type keptEntry struct {
	key  string
	data []byte
	gen  int // counts uses, so that an old idle timer drops nothing newer
}

const (
	keptInputs     = 4
	keptInputBytes = 64 << 20
	// keptInputIdle is how long a kept document outlives its last page
	// here: a document's next page follows within a run's time.
	keptInputIdle = 10 * time.Second
)

// keeps says whether the input of a job is one keptInput keeps when its
// page is fetched.
func keeps(j jobs.Message) bool {
	_, _, page := jobs.PageOf(j.ID)
	return page && j.InputKey != ""
}

// get is the kept input under key, or nil.
func (k *keptInput) get(key string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	i := slices.IndexFunc(k.kept, func(e *keptEntry) bool { return e.key == key })
	if i < 0 {
		return nil
	}
	e := k.kept[i]
	k.kept = append(slices.Delete(k.kept, i, i+1), e)
	k.touch(e)
	return e.data
}

// keep keeps data as the input under key, dropping the least recently
// used past the limits (data itself, when it alone is past them).
func (k *keptInput) keep(key string, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.drop(key)
	e := &keptEntry{key: key, data: data}
	k.kept = append(k.kept, e)
	k.size += int64(len(data))
	for len(k.kept) > keptInputs || k.size > keptInputBytes {
		k.drop(k.kept[0].key)
	}
	if len(k.kept) > 0 && k.kept[len(k.kept)-1] == e {
		k.touch(e)
	}
}

// drop forgets the input under key; the caller holds mu.
func (k *keptInput) drop(key string) {
	k.kept = slices.DeleteFunc(k.kept, func(e *keptEntry) bool {
		if e.key == key {
			k.size -= int64(len(e.data))
			return true
		}
		return false
	})
}

// touch restarts e's idle timer; the caller holds mu.
func (k *keptInput) touch(e *keptEntry) {
	e.gen++
	gen := e.gen
	idle := k.idle
	if idle <= 0 {
		idle = keptInputIdle
	}
	time.AfterFunc(idle, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if e.gen == gen && slices.Contains(k.kept, e) {
			k.drop(e.key)
		}
	})
}
