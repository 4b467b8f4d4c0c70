package worker

import (
	"sync"
	"time"

	"github.com/inferq/inferq/internal/jobs"
)

// keptInput keeps the input of the document whose page this worker
// fetched last, for its next pages: a document's page jobs all name its
// S3 object (jobs.Pages) and reach a worker one after another (the zoo's
// ocr runs a page a batch), and each would otherwise GET the whole
// document again, N GETs of it for N pages. The rules:
//
//   - Only a page job's input is kept (jobs.PageOf): any other job's
//     object is its own, never asked for again.
//   - One input is kept, for at most idle after it was last fetched or
//     used: it holds a document's bytes, at most INFERQ_MAX_INPUT_BYTES
//     (the model's open document holds the same slice, models.openDocs).
//   - A job's input is written once, at submit, and never rewritten under
//     its key: what is kept is what S3 holds, for as long as the key is
//     asked for.
type keptInput struct {
	mu   sync.Mutex
	idle time.Duration
	key  string
	data []byte
	gen  int // counts keeps and uses, so that an old idle timer drops nothing newer
}

// keptInputIdle is how long a kept document outlives its last page here:
// a document's next page follows within a run's time.
const keptInputIdle = 10 * time.Second

// keeps says whether the input of a job is one keptInput keeps.
func keeps(j jobs.Message) bool {
	_, _, page := jobs.PageOf(j.ID)
	return page && j.InputKey != ""
}

// get is the kept input under key, or nil.
func (k *keptInput) get(key string) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.data == nil || k.key != key {
		return nil
	}
	k.touch()
	return k.data
}

// keep keeps data as the input under key, in place of the one before.
func (k *keptInput) keep(key string, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.key, k.data = key, data
	k.touch()
}

// touch restarts the idle timer; the caller holds mu.
func (k *keptInput) touch() {
	k.gen++
	gen := k.gen
	idle := k.idle
	if idle <= 0 {
		idle = keptInputIdle
	}
	time.AfterFunc(idle, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.gen == gen {
			k.key, k.data = "", nil
		}
	})
}
