package sftpserver

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pkg/sftp"
)

// Serve speaks SFTP version 3 on r and w until the client ends the stream
// (nil) or ctx is done (ctx.Err()). It closes w, and r when r is an
// io.Closer, before returning.
func Serve(ctx context.Context, r io.Reader, w io.WriteCloser) error {
	srv, err := sftp.NewServer(stream{r, w})
	if err != nil {
		return fmt.Errorf("sftpserver: start: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	err = srv.Serve()
	stop()
	srv.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sftpserver: %w", err)
	}
	return nil
}

// stream joins a reader and a writer into the io.ReadWriteCloser the SFTP
// server needs.
type stream struct {
	io.Reader
	w io.WriteCloser
}

func (s stream) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s stream) Close() error {
	err := s.w.Close()
	if c, ok := s.Reader.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}
