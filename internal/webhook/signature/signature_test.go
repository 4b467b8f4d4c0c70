package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// The example published with the Standard Webhooks specification (and in
// Svix's documentation), also the secret API.md shows.
const (
	specSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTS     = 1614265330
	specBody   = `{"test": 2432232314}`
	specSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignSpecVector(t *testing.T) {
	got := Sign(specSecret, specID, time.Unix(specTS, 0), []byte(specBody))
	if got != specSig {
		t.Fatalf("Sign = %q, want %q", got, specSig)
	}
	// Same key without the prefix.
	if got := Sign(specSecret[len(SecretPrefix):], specID, time.Unix(specTS, 0), []byte(specBody)); got != specSig {
		t.Fatalf("Sign without prefix = %q, want %q", got, specSig)
	}
}

func TestSignRawSecretFallback(t *testing.T) {
	// Not base64 (spaces, '!'): the bytes themselves are the key.
	const secret = "whsec_not base64!"
	h := hmac.New(sha256.New, []byte("not base64!"))
	h.Write([]byte("msg_1.1700000000.{}"))
	want := "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
	if got := Sign(secret, "msg_1", time.Unix(1700000000, 0), []byte("{}")); got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func headers(id string, ts int64, sig string) http.Header {
	h := http.Header{}
	// As a Go server presents them: canonical keys.
	h.Set("Webhook-Id", id)
	h.Set("Webhook-Timestamp", strconv.FormatInt(ts, 10))
	h.Set("Webhook-Signature", sig)
	return h
}

func TestVerify(t *testing.T) {
	now := time.Unix(specTS, 0)
	body := []byte(specBody)
	cases := []struct {
		name    string
		secret  string
		h       http.Header
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"valid", specSecret, headers(specID, specTS, specSig), body, now, nil},
		{"valid within tolerance", specSecret, headers(specID, specTS, specSig), body, now.Add(4 * time.Minute), nil},
		{"rotation: several signatures", specSecret, headers(specID, specTS, "v1,Zm9v v1a,abcd "+specSig), body, now, nil},
		{"wrong secret", "whsec_" + base64.StdEncoding.EncodeToString([]byte("other key")), headers(specID, specTS, specSig), body, now, ErrNoMatch},
		{"tampered body", specSecret, headers(specID, specTS, specSig), []byte(`{"test": 2432232315}`), now, ErrNoMatch},
		{"other id", specSecret, headers("msg_other", specTS, specSig), body, now, ErrNoMatch},
		{"other version only", specSecret, headers(specID, specTS, "v2"+specSig[2:]), body, now, ErrNoMatch},
		{"too old", specSecret, headers(specID, specTS, specSig), body, now.Add(6 * time.Minute), ErrTimestampTooOld},
		{"too new", specSecret, headers(specID, specTS, specSig), body, now.Add(-6 * time.Minute), ErrTimestampTooNew},
		{"missing signature", specSecret, headers(specID, specTS, ""), body, now, ErrMissingHeaders},
		{"missing id", specSecret, headers("", specTS, specSig), body, now, ErrMissingHeaders},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Verify(c.secret, c.h, c.body, 0, c.now)
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestVerifyBadTimestamp(t *testing.T) {
	h := headers(specID, specTS, specSig)
	h.Set("Webhook-Timestamp", "yesterday")
	if err := Verify(specSecret, h, []byte(specBody), 0, time.Unix(specTS, 0)); !errors.Is(err, ErrInvalidTimestamp) {
		t.Fatalf("Verify = %v, want ErrInvalidTimestamp", err)
	}
}

func TestVerifyCustomTolerance(t *testing.T) {
	h := headers(specID, specTS, specSig)
	if err := Verify(specSecret, h, []byte(specBody), time.Hour, time.Unix(specTS, 0).Add(59*time.Minute)); err != nil {
		t.Fatalf("Verify with 1h tolerance: %v", err)
	}
}
