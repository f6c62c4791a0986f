"""The depth lab and the labs' charts."""
