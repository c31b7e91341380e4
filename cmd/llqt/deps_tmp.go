package main
import (
 _ "github.com/spf13/cobra"
 _ "github.com/x448/float16"
 _ "github.com/schollz/progressbar/v3"
 _ "github.com/olekukonko/tablewriter"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/sys/cpu"
 _ "golang.org/x/term"
 _ "google.golang.org/protobuf/encoding/protowire"
 _ "gonum.org/v1/plot"
)
func main(){}
