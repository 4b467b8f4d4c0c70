package jobs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Progress is how far a running document job is: pages read of pages.
type Progress struct {
	PagesDone int `json:"pages_done"`
	Pages     int `json:"pages"`
}

// setProgress writes a job's progress only while it runs, so that a late
// write neither revives an expired record nor touches an ended one.
// KEYS: the record. ARGV: the progress as JSON.
// It returns the job's state ("" when the record is gone).
var setProgress = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if cur ~= 'running' then return cur or '' end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
return cur
`)

// SetProgress records a running job's progress; a job that is not
// running is left as it is. ended reports a job that has ended (canceled
// while it ran, say) or is gone: its work can stop.
func (s *Store) SetProgress(ctx context.Context, id string, p Progress) (ended bool, err error) {
	b, _ := json.Marshal(p)
	st, err := setProgress.Run(ctx, s.rdb, []string{RecordKey(id)}, string(b)).Text()
	if err != nil {
		return false, fmt.Errorf("progress of job %s: %w", id, err)
	}
	return st == "" || State(st).Terminal(), nil
}

// decodeProgress reads the record's progress field; none or a bad one is
// nil.
func decodeProgress(v string) *Progress {
	if v == "" {
		return nil
	}
	var p Progress
	if json.Unmarshal([]byte(v), &p) != nil {
		return nil
	}
	return &p
}
