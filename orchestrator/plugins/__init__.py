"""Task, trigger and condition implementations, grouped as Kestra groups them."""
