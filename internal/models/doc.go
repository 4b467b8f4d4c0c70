// Package models is inferq's model registry: model directories with their
// manifests and versions, ONNX Runtime sessions over them, and the pre- and
// post-processing that turn an upload into a tensor and a tensor into an
// answer.
//
// A model lives in <models dir>/<name>/<version>/ with manifest.yaml and
// model.onnx (or the files the manifest names); the highest version is the
// one served.
package models
