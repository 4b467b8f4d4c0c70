package catalog

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
)

// S3Source is a models directory kept under an S3 prefix, so that a whole
// fleet shares one: s3://<bucket>/<prefix>/<name>/<version>/manifest.yaml.
type S3Source struct {
	Client *minio.Client
	Bucket string
	Prefix string
}

// ParseS3 splits "s3://bucket/prefix" into its bucket and prefix; ok is
// false for a local path.
func ParseS3(dir string) (bucket, prefix string, ok bool) {
	rest, ok := strings.CutPrefix(dir, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	return bucket, strings.Trim(prefix, "/"), bucket != ""
}

// Sync mirrors into local every model version under the prefix that local
// lacks, and returns how many it fetched. A version is fetched whole into
// a temporary directory and renamed into place, so a registry reading
// local never sees half of one. Versions are immutable: publish a change
// as a new version.
func (s *S3Source) Sync(ctx context.Context, local string) (int, error) {
	prefix := s.Prefix
	if prefix != "" {
		prefix += "/"
	}
	versions := map[string][]minio.ObjectInfo{} // "<name>/<version>" -> its objects
	for obj := range s.Client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return 0, fmt.Errorf("list s3://%s/%s: %w", s.Bucket, prefix, obj.Err)
		}
		rel := strings.TrimPrefix(obj.Key, prefix)
		parts := strings.Split(rel, "/")
		if len(parts) < 3 || !ValidName(parts[0]) || !ValidName(parts[1]) {
			continue
		}
		key := parts[0] + "/" + parts[1]
		versions[key] = append(versions[key], obj)
	}
	fetched := 0
	for key, objs := range versions {
		dest := filepath.Join(local, filepath.FromSlash(key))
		if _, err := os.Stat(filepath.Join(dest, ManifestFile)); err == nil {
			continue
		}
		hasManifest := false
		for _, o := range objs {
			if path.Base(o.Key) == ManifestFile && strings.Count(strings.TrimPrefix(o.Key, prefix), "/") == 2 {
				hasManifest = true
			}
		}
		if !hasManifest {
			continue // still being uploaded, or not a model
		}
		if err := s.fetch(ctx, prefix+key+"/", objs, dest); err != nil {
			return fetched, fmt.Errorf("fetch model %s: %w", key, err)
		}
		fetched++
	}
	return fetched, nil
}

func (s *S3Source) fetch(ctx context.Context, prefix string, objs []minio.ObjectInfo, dest string) error {
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		if rel == "" || strings.HasSuffix(rel, "/") {
			continue
		}
		clean := filepath.Clean(filepath.FromSlash(rel))
		if clean == "." || strings.HasPrefix(clean, "..") || filepath.IsAbs(clean) {
			return fmt.Errorf("object %s: unsafe name", o.Key)
		}
		if err := s.Client.FGetObject(ctx, s.Bucket, o.Key, filepath.Join(tmp, clean), minio.GetObjectOptions{}); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dest)
}
