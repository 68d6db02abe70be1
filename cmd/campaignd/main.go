// Command campaignd is the Campaign Manager for Payback Mexico's SMS
// broadcasts: an FTP server whose uploads become broadcasts, sent over SMPP,
// managed in a web console, reported daily over FTP.
//
//	campaignd                         demo mode: 127.0.0.1, ./data, bundled SMSC simulator
//	campaignd serve --config FILE     production
//	campaignd check-file FILE.csv     validate a file offline
//	campaignd hash-password           read a password on stdin, print its bcrypt hash
//	campaignd smsc-sim --listen ADDR  run the bundled SMSC simulator alone
//	campaignd version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/crypto/bcrypt"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "campaignd:", err)
		}
		os.Exit(1)
	}
}

// run dispatches the subcommands; it returns when ctx is cancelled (serve,
// demo, smsc-sim) or the command is done.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "serve":
		m := NewMain(stdout, stderr)
		if err := m.ParseFlags(cmd, args); err != nil {
			return err
		}
		if err := m.Run(ctx); err != nil {
			m.Close()
			return err
		}
		<-ctx.Done()
		m.Logger.Info("shutting down")
		return m.Close()
	case "check-file":
		return checkFile(args, stdout)
	case "hash-password":
		return hashPassword(stdin, stdout)
	case "smsc-sim":
		return smscSim(ctx, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "campaignd", Version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  campaignd                         demo mode (127.0.0.1, ./data, bundled SMSC simulator)
  campaignd serve --config FILE     production (or CAMPAIGND_CONFIG=FILE)
  campaignd check-file FILE.csv     validate a file offline and print the decision and every error
  campaignd hash-password           read a password on stdin, print its bcrypt hash for the config
  campaignd smsc-sim --listen ADDR  run the bundled SMSC simulator on its own
  campaignd version                 print the version
  campaignd help                    this list (also -h, --help)
`

func hashPassword(stdin io.Reader, stdout io.Writer) error {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("hash-password: empty password on stdin")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}
