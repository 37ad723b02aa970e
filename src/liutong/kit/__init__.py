"""Small technical pieces shared by every business package. It stays small and technical."""
