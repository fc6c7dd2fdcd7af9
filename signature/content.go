package signature

import (
	"crypto/sha256"
	"hash"
	"sync"
)

// AppendSignedContent appends the content that is signed,
//
//	POST <uri>\n<clientID>.<t>.<body>
//
// to dst and returns the extended slice. uri is the request target (path
// and query), clientID and t the Client-Id and Request-Time (or
// Response-Time) header values verbatim, body the raw body.
func AppendSignedContent(dst []byte, uri, clientID, t string, body []byte) []byte {
	dst = appendContentPrefix(dst, uri, clientID, t)
	return append(dst, body...)
}

// appendContentPrefix appends everything of the signed content before the
// body.
func appendContentPrefix(dst []byte, uri, clientID, t string) []byte {
	dst = append(dst, "POST "...)
	dst = append(dst, uri...)
	dst = append(dst, '\n')
	dst = append(dst, clientID...)
	dst = append(dst, '.')
	dst = append(dst, t...)
	return append(dst, '.')
}

// digester is a reusable SHA-256 state with room for the content prefix.
type digester struct {
	h      hash.Hash
	prefix []byte
	sum    [sha256.Size]byte
}

var digesters = sync.Pool{New: func() any {
	return &digester{h: sha256.New(), prefix: make([]byte, 0, 256)}
}}

// maxPooledPrefix bounds the prefix buffer kept in the pool, so that one
// huge URI does not pin memory.
const maxPooledPrefix = 4096

// Digest returns the SHA-256 of the signed content that AppendSignedContent
// would build, streaming the parts into the hash without copying the body.
func Digest(uri, clientID, t string, body []byte) [32]byte {
	d := digesters.Get().(*digester)
	d.h.Reset()
	d.prefix = appendContentPrefix(d.prefix[:0], uri, clientID, t)
	d.h.Write(d.prefix)
	d.h.Write(body)
	d.h.Sum(d.sum[:0])
	sum := d.sum
	if cap(d.prefix) <= maxPooledPrefix {
		digesters.Put(d)
	}
	return sum
}
