package models

import (
	"bytes"
	"context"
	"sync"
	"time"

	"github.com/inferq/inferq/internal/documents"
)

// openDocs keeps the document whose pages this process read last open
// between its page jobs: the pages of one document come to a worker one
// after another (several in a batch, more in the next), and each would
// otherwise open it again, pdfium parsing it afresh on an instance of its
// own (12 ms of a page job's 35 ms of pdfium on the bench's 100-page
// scan). The rules:
//
//   - A document is lent to one page at a time (a Document is not safe
//     for concurrent use): a page that finds it lent opens its own copy,
//     and whichever copy comes back last stays.
//   - One document stays open, and for at most openDocIdle after its last
//     page: it holds a pdfium instance of the pool's few, and the
//     document's bytes.
//   - A document is known by its bytes (compared whole, a memcmp): a page
//     job's input is its document's, whoever fetched it.
//   - A document whose page failed is closed, not kept: its instance may
//     have been stopped.
var openDocs docCache

const openDocIdle = 10 * time.Second

type docCache struct {
	mu   sync.Mutex
	data []byte
	doc  documents.Document
	gen  int // counts keeps, so that an old idle timer closes nothing newer
}

// take lends the open document whose bytes are data, or opens it.
func (c *docCache) take(ctx context.Context, data []byte) (documents.Document, error) {
	c.mu.Lock()
	if c.doc != nil && bytes.Equal(c.data, data) {
		d := c.doc
		c.doc, c.data = nil, nil
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()
	return docOpener().Open(ctx, data)
}

// give takes back a document lent or opened by take: kept open when its
// page went well (closing the one kept before), closed otherwise.
func (c *docCache) give(data []byte, d documents.Document, ok bool) {
	if !ok {
		_ = d.Close()
		return
	}
	c.mu.Lock()
	old := c.doc
	c.data, c.doc = data, d
	c.gen++
	gen := c.gen
	c.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	time.AfterFunc(openDocIdle, func() {
		c.mu.Lock()
		idle := c.doc
		if c.gen != gen || idle == nil {
			c.mu.Unlock()
			return
		}
		c.doc, c.data = nil, nil
		c.mu.Unlock()
		_ = idle.Close()
	})
}
