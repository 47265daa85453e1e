"""minifaas, a small function-as-a-service platform, and the daydream provider plugin for it:
the example of docs/writing-a-provider.md."""
