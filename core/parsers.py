"""The API's JSON parser: DRF's, with nesting too deep to read answered as a malformed request.

Python's json module gives up on deep nesting (100,000 arrays inside each other fit in 200 kB) with a
RecursionError, not the ValueError DRF's parser turns into a 400: without this it is a 500.
"""
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class JsonParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body nests too deeply.") from None
