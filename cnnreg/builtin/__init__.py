"""Built-in plugins: cnnreg's own components, registered through the same hooks as third-party ones."""
