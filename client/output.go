package client

import (
	"context"
	"encoding/json"
	"net/url"
)

// Result is a job's whole result: the inline one, or, when the fleet
// stored a large one in S3 (`{"stored": true, ...}`), what
// GET /v1/jobs/<id>/output serves.
func (c *Client) Result(ctx context.Context, j *Job) (json.RawMessage, error) {
	var ref struct {
		Stored bool `json:"stored"`
	}
	if json.Unmarshal(j.Result, &ref) != nil || !ref.Stored {
		return j.Result, nil
	}
	req, err := c.request(ctx, "GET", "/v1/jobs/"+url.PathEscape(j.ID)+"/output", nil)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	return out, c.do(req, 200, &out)
}
