"""What operators run and watch: backups and restores, readiness, the one-process lock, the command line's actions,
housekeeping, and the watch over interrupted sends."""
