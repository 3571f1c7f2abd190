"""The Streamlit app: employees chat, corpus owners re-ingest, engineers watch quality (`assistant ui`)."""
