"""What happens to AMIs after their bake: listing, the in-use scan, gc and invalidation."""
