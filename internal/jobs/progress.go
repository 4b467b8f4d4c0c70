package jobs

import (
	"encoding/json"
)

// Progress is how far a running document job is: pages ended of pages.
type Progress struct {
	PagesDone int `json:"pages_done"`
	Pages     int `json:"pages"`
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
