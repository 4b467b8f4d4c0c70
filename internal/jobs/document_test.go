package jobs

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPageIDs(t *testing.T) {
	doc := NewIDIn(7)
	for _, n := range []int{1, 12, 500} {
		id := PageID(doc, n)
		d, k, ok := PageOf(id)
		if !ok || d != doc || k != n {
			t.Fatalf("PageOf(%s) = %s %d %v", id, d, k, ok)
		}
		if ShardOf(id) != ShardOf(doc) || tagOf(id) != tagOf(doc) {
			t.Fatalf("page %s is not in its document's shard", id)
		}
	}
	for _, id := range []string{doc, "b_" + doc, doc + "-p", doc + "-p0", doc + "-px", "-p3"} {
		if _, _, ok := PageOf(id); ok {
			t.Fatalf("%q read as a page", id)
		}
	}
}

// TestCreatePagesOnce: a fan-out run again (a redelivery after a crash)
// makes only the missing pages and counts none twice; none is made once
// the document ended; the document's progress follows its pages' ends;
// a cancel reaches the pages not ended.
func TestCreatePagesOnce(t *testing.T) {
	checkPages(t, NewStore(startRedis(t), time.Hour))
}

// checkPages is TestCreatePagesOnce on a store (TestStoreOnCluster runs
// it on a Cluster: a document's keys and its pages' share one slot).
func checkPages(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	doc := &Job{ID: NewID(), Tenant: "docs", Tier: "bulk", Model: "ocr", CreatedAt: now, Deadline: now.Add(time.Hour), InputKey: "k"}
	if err := s.Create(ctx, doc); err != nil {
		t.Fatal(err)
	}
	pages := func(n int) []*Job {
		out := make([]*Job, n)
		for i := range out {
			out[i] = &Job{ID: PageID(doc.ID, i+1), Tenant: "docs", Tier: "bulk", Model: "ocr", CreatedAt: now, Deadline: doc.Deadline, InputKey: "k", BatchID: doc.ID}
		}
		return out
	}
	if _, err := s.CreatePages(ctx, doc, pages(4)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("pages of a queued document: %v, want ErrNotRunning", err)
	}
	for _, to := range []State{Scheduled, Running} {
		if _, err := s.Transition(ctx, doc.ID, "docs", to, Update{}); err != nil {
			t.Fatal(err)
		}
	}
	// A crash after two pages: the next fan-out makes the other two.
	if n, err := s.CreatePages(ctx, doc, pages(4)[:2]); err != nil || n != 2 {
		t.Fatalf("first fan-out: %d, %v", n, err)
	}
	if n, err := s.CreatePages(ctx, doc, pages(4)); err != nil || n != 2 {
		t.Fatalf("second fan-out: %d, %v; want the 2 missing pages", n, err)
	}
	c, err := s.DocumentPages(ctx, doc.ID)
	if err != nil || c.Pages != 4 {
		t.Fatalf("counts %+v, %v", c, err)
	}
	if q, _ := s.rdb.HGet(ctx, BatchKey(doc.ID), "queued").Int(); q != 4 {
		t.Fatalf("%d pages counted queued, want 4", q)
	}
	if u, _ := s.Unfinished(ctx, "docs"); u != 5 {
		t.Fatalf("unfinished %d, want the document and its 4 pages", u)
	}
	p1 := PageID(doc.ID, 1)
	for _, to := range []State{Scheduled, Running} {
		if _, err := s.Transition(ctx, p1, "docs", to, Update{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx, &Job{ID: p1, Tenant: "docs", Deadline: doc.Deadline}, Succeeded, Update{Result: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.DocumentProgress(ctx, []string{doc.ID})
	if err != nil || got[doc.ID] != (Progress{PagesDone: 1, Pages: 4}) {
		t.Fatalf("progress %+v, %v", got, err)
	}
	if j, _ := s.Get(ctx, doc.ID); j.Progress == nil || *j.Progress != (Progress{PagesDone: 1, Pages: 4}) {
		t.Fatalf("record's progress %+v", j.Progress)
	}
	if _, err := s.Transition(ctx, doc.ID, "docs", Canceled, Update{}); err != nil {
		t.Fatal(err)
	}
	ids, err := s.CancelPages(ctx, doc.ID, "docs")
	if err != nil || len(ids) != 3 {
		t.Fatalf("canceled %v, %v; want the 3 pages not ended", ids, err)
	}
	if ttl := s.rdb.PTTL(ctx, BatchKey(doc.ID)).Val(); ttl <= time.Hour {
		t.Fatalf("an ended document's counts live %s, want its pages' retention and grace", ttl)
	}
	if _, err := s.CreatePages(ctx, doc, pages(5)); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("pages of a canceled document: %v, want ErrNotRunning", err)
	}
	if got, _ := s.DocumentProgress(ctx, []string{doc.ID}); len(got) != 0 {
		t.Fatalf("progress of an ended document: %+v", got)
	}
	if u, _ := s.Unfinished(ctx, "docs"); u != 0 {
		t.Fatalf("unfinished %d after the document and its pages ended", u)
	}
}
