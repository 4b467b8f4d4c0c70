package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// A document job fans out into page jobs: the document is to its pages as
// a batch is to its jobs. Page n of document d is the job PageID(d, n),
// with d as its batch_id, so that every transition of a page keeps the
// counts in BatchKey(d) (the transition script) and the page lies in d's
// shard (ShardOf): the document's record, its counts and all its pages
// share one Redis Cluster slot. The count of pages is the field FieldPages
// of BatchKey(d), written before the first page exists.

// pageSep separates a document's id from its page number in a page's id.
const pageSep = "-p"

// FieldPages is the field of a document's BatchKey that holds its page
// count.
const FieldPages = "pages"

// PageID is the id of page n (1-based) of document doc.
func PageID(doc string, n int) string { return doc + pageSep + strconv.Itoa(n) }

// PageOf says whether id is a document's page, and which.
func PageOf(id string) (doc string, n int, ok bool) {
	i := strings.LastIndex(id, pageSep)
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[i+len(pageSep):])
	if err != nil || n < 1 {
		return "", 0, false
	}
	return id[:i], n, true
}

// Pages are the page jobs of document doc, of n pages; contentType(i)
// is page i's content type. A page carries its document's tier, deadline
// and input (the S3 key, or the bytes when inline), and has no webhook of
// its own.
func Pages(doc Message, n int, contentType func(int) string) []*Job {
	pages := make([]*Job, n)
	for i := range pages {
		pages[i] = &Job{
			ID: PageID(doc.ID, i+1), Tenant: doc.Tenant, Model: doc.Model, Tier: doc.Tier,
			CreatedAt: doc.CreatedAt, Deadline: doc.Deadline, BatchID: doc.ID,
			InputKey: doc.InputKey, Input: doc.Input, InputSize: doc.InputSize,
			ContentType: contentType(i + 1),
		}
	}
	return pages
}

// ErrNotRunning is a document that is no longer running (canceled, or
// ended) when its pages are to be made: none is made.
var ErrNotRunning = errors.New("document not running")

// startDocument records a running document's page count and its first
// progress. KEYS: the document's record, its batch key. ARGV: the page
// count, the progress JSON. It returns the document's state.
var startDocument = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'status')
if cur ~= 'running' then return cur or '' end
redis.call('HSET', KEYS[2], 'pages', ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'progress') == 0 then redis.call('HSET', KEYS[1], 'progress', ARGV[2]) end
return cur
`)

// createPage makes one page's record unless it exists, counting it
// queued in its document and unfinished for its tenant, only while the
// document runs: so a fan-out run again after a crash makes only the
// pages still missing and counts none twice, and a fan-out racing a
// cancel makes no page after it. KEYS: the page's record, the document's
// record, the tenant's unfinished count, the document's batch key. ARGV:
// the record's field/value pairs. It returns 1 made, 0 there already, -1
// the document is not running.
var createPage = redis.NewScript(`
if redis.call('HGET', KEYS[2], 'status') ~= 'running' then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('INCR', KEYS[3])
redis.call('HINCRBY', KEYS[4], 'queued', 1)
return 1
`)

// CreatePages records a running document's page count and makes the
// records of its pages that do not exist yet, in one round trip per
// createChunk pages; every page's BatchID is doc. It returns how many it
// made, or ErrNotRunning when the document ended meanwhile.
func (s *Store) CreatePages(ctx context.Context, doc *Job, pages []*Job) (int, error) {
	p, _ := json.Marshal(Progress{Pages: len(pages)})
	st, err := startDocument.Run(ctx, s.rdb, []string{RecordKey(doc.ID), BatchKey(doc.ID)}, len(pages), string(p)).Text()
	if err != nil {
		return 0, fmt.Errorf("start document %s: %w", doc.ID, err)
	}
	if State(st) != Running {
		return 0, fmt.Errorf("document %s is %q: %w", doc.ID, st, ErrNotRunning)
	}
	made := 0
	for start := 0; start < len(pages); start += createChunk {
		chunk := pages[start:min(start+createChunk, len(pages))]
		for _, pg := range chunk {
			if pg.BatchID != doc.ID || ShardOf(pg.ID) != ShardOf(doc.ID) {
				return made, fmt.Errorf("page %s of document %s: %w", pg.ID, doc.ID, ErrWrongShard)
			}
		}
		cmds := make([]*redis.Cmd, len(chunk))
		// With replicas required, the pages are on them before they are
		// published, as CreateMany's records are: a failover must not
		// lose a page whose message is stored.
		err := s.pipelined(ctx, RecordKey(doc.ID), false, s.minReplicas, func(pipe redis.Pipeliner) error {
			for i, pg := range chunk {
				var args []any
				for k, v := range recordFields(pg) {
					args = append(args, k, v)
				}
				keys := []string{RecordKey(pg.ID), RecordKey(doc.ID), unfinishedKey(ShardOf(pg.ID), pg.Tenant), BatchKey(doc.ID)}
				cmds[i] = createPage.Eval(ctx, pipe, keys, args...)
			}
			return nil
		})
		if err != nil {
			return made, fmt.Errorf("create pages of %s: %w", doc.ID, err)
		}
		for _, c := range cmds {
			switch c.Val() {
			case int64(1):
				made++
			case int64(-1):
				return made, fmt.Errorf("document %s: %w", doc.ID, ErrNotRunning)
			}
		}
	}
	return made, nil
}

// PageCounts are a document's pages by how they ended.
type PageCounts struct {
	Pages, Succeeded, Failed, Canceled, Expired int
}

// Ended is how many pages have ended.
func (c PageCounts) Ended() int { return c.Succeeded + c.Failed + c.Canceled + c.Expired }

// DocumentPages reads a document's page counts; Pages is 0 for a job
// that never fanned out.
func (s *Store) DocumentPages(ctx context.Context, doc string) (PageCounts, error) {
	v, err := s.rdb.HMGet(ctx, BatchKey(doc), FieldPages, string(Succeeded), string(Failed), string(Canceled), string(Expired)).Result()
	if err != nil {
		return PageCounts{}, fmt.Errorf("pages of document %s: %w", doc, err)
	}
	n := func(i int) int {
		s, _ := v[i].(string)
		k, _ := strconv.Atoi(s)
		return k
	}
	return PageCounts{Pages: n(0), Succeeded: n(1), Failed: n(2), Canceled: n(3), Expired: n(4)}, nil
}

// documentProgress writes a running document's progress from its page
// counts, which only grow, so that writers in any order leave the
// newest. KEYS: the record, the batch key. It returns {pages done,
// pages}, or {-1, 0} when the document is not running.
var documentProgress = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return {-1, 0} end
local h = redis.call('HMGET', KEYS[2], 'pages', 'succeeded', 'failed', 'canceled', 'expired')
local pages = tonumber(h[1]) or 0
local done = (tonumber(h[2]) or 0) + (tonumber(h[3]) or 0) + (tonumber(h[4]) or 0) + (tonumber(h[5]) or 0)
redis.call('HSET', KEYS[1], 'progress', '{"pages_done":' .. done .. ',"pages":' .. pages .. '}')
return {done, pages}
`)

// DocumentProgress brings the records of running documents up to date
// with their pages, in one round trip, and returns the progress of those
// still running (the others are absent).
func (s *Store) DocumentProgress(ctx context.Context, docs []string) (map[string]Progress, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(docs))
	for i, d := range docs {
		cmds[i] = documentProgress.Eval(ctx, pipe, []string{RecordKey(d), BatchKey(d)})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("progress of %d documents: %w", len(docs), err)
	}
	out := map[string]Progress{}
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 2 || v[0] < 0 {
			continue
		}
		out[docs[i]] = Progress{PagesDone: int(v[0]), Pages: int(v[1])}
	}
	return out, nil
}

// CancelPages cancels the pages of a document that have not ended (none
// for a job that never fanned out) and returns their ids: a canceled or
// failed document runs none of its pages further.
func (s *Store) CancelPages(ctx context.Context, doc, tenant string) ([]string, error) {
	c, err := s.DocumentPages(ctx, doc)
	if err != nil || c.Pages == 0 {
		return nil, err
	}
	now := time.Now()
	moves := make([]Move, c.Pages)
	for i := range moves {
		moves[i] = Move{ID: PageID(doc, i+1), Tenant: tenant, To: Canceled, Update: Update{FinishedAt: now}}
	}
	var ids []string
	errs := []error{s.KeepDocumentCounts(ctx, doc)}
	for i, res := range s.TransitionMany(ctx, moves) {
		var te *TransitionError
		switch {
		case res.Err == nil:
			ids = append(ids, moves[i].ID)
		case errors.As(res.Err, &te), errors.Is(res.Err, ErrNotFound):
			// Ended already, or never made (the document stopped first).
		default:
			errs = append(errs, res.Err)
		}
	}
	return ids, errors.Join(errs...)
}

// KeepDocumentCounts gives an ended document's counts the lifetime of its
// pages' records (retention, then the grace), so that they go with them.
func (s *Store) KeepDocumentCounts(ctx context.Context, doc string) error {
	if err := s.rdb.PExpire(ctx, BatchKey(doc), s.retention+ExpiredGrace).Err(); err != nil {
		return fmt.Errorf("document %s counts: %w", doc, err)
	}
	return nil
}
