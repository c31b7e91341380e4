package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CheckOutputFile fails before any work when out cannot be written: a
// directory, a folder that does not exist, or an existing file without
// --force. Every command that writes one output file checks it here, so
// they refuse the same cases in the same words.
func CheckOutputFile(out string, force bool) error {
	st, err := os.Stat(out)
	switch {
	case err == nil && st.IsDir():
		return fmt.Errorf("%s: output is a directory; give a file name such as %s", out, filepath.Join(out, "model.gguf"))
	case err == nil && !force:
		return fmt.Errorf("%s: output exists (use --force to overwrite)", out)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%s: %w", out, err)
	}
	if dir := filepath.Dir(out); dir != "" {
		if st, err := os.Stat(dir); err != nil {
			return fmt.Errorf("%s: the output folder %s does not exist", out, dir)
		} else if !st.IsDir() {
			return fmt.Errorf("%s: %s is not a folder", out, dir)
		}
	}
	return nil
}
